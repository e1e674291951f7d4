//! Log scan benchmark: writes a deterministic k8s-like log workload (≥ 5 GB of uncompressed
//! lines by default) into a local-directory `Storage`, then times LogQL-shaped reads through
//! the Parquet `LogSource`, with one file scan at a time and with the default concurrency.
//!
//! ```text
//! cargo run --release -p tributary-storage --features test-util --example log_scan -- --gb 5 --dir /tmp/logscan
//! ```
//!
//! The data is written once (a `workload.txt` in `--dir` records it with the generator's version;
//! a second run reuses it, and refuses a directory written by another version). Generation is
//! not timed; `--generate-only` writes the data and exits (benches/compare/logql.sh uses it).
//! Reported CPU time is the whole process's user + system time from `/proc/self/stat` (all
//! threads), so "GB/s per core" = body bytes scanned / CPU seconds.
//! The files are read through the OS page cache once warm: this measures decoding and
//! filtering, not the disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tributary_storage::read::{Direction, LineHint, LogRequest, LogSource};
use tributary_storage::signals::LogRecord;
use tributary_storage::types::{Labels, MatchOp, Matcher};
use tributary_storage::{Storage, StorageConfig};

/// 2026-01-01T00:00:00Z in nanoseconds.
const T0: i64 = 1_767_225_600_000_000_000;
const HOUR_NS: i64 = 3_600_000_000_000;
/// The data spans two hours (so files split by hour as well as by flush).
const SPAN_NS: i64 = 2 * HOUR_NS;
/// Records per `write_logs` call: one "flush" (bounded memory while generating).
const FLUSH_RECORDS: usize = 500_000;

const CLUSTERS: [&str; 3] = ["prod-eu-1", "prod-us-1", "staging"];
const SERVICES: [&str; 12] = [
    "checkout",
    "cart",
    "payments",
    "frontend",
    "search",
    "auth",
    "inventory",
    "shipping",
    "recommendations",
    "email",
    "ads",
    "currency",
];
const PODS_PER_SERVICE: usize = 4;
const PATHS: [&str; 6] = [
    "/api/v1/items",
    "/api/v1/orders",
    "/api/v1/cart/lines",
    "/healthz",
    "/api/v2/search",
    "/static/app.js",
];
const UPSTREAMS: [&str; 4] = ["payments", "inventory", "auth", "currency"];

/// xorshift64*: deterministic and fast; the workload must be the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Stream {
    labels: std::sync::Arc<Labels>,
    resource: std::sync::Arc<str>,
    service: &'static str,
}

fn streams() -> Vec<Stream> {
    let mut out = Vec::new();
    for cluster in CLUSTERS {
        for (si, service) in SERVICES.iter().enumerate() {
            for p in 0..PODS_PER_SERVICE {
                let pod = format!("{service}-7f9c{si:02x}d5b-{:05x}", (si * 31 + p * 7919) % 0xfffff);
                let ns = if si % 3 == 0 { "platform" } else { "shop" };
                out.push(Stream {
                    labels: Labels::from_pairs(&[
                        ("cluster", cluster),
                        ("service_name", service),
                        ("k8s_namespace_name", ns),
                        ("k8s_pod_name", &pod),
                    ])
                    .into(),
                    resource: format!(
                        r#"{{"k8s.cluster.name":"{cluster}","k8s.namespace.name":"{ns}","k8s.pod.name":"{pod}","service.name":"{service}"}}"#
                    )
                    .into(),
                    service,
                });
            }
        }
    }
    out
}

/// One log line of a realistic mix: access logs, JSON and logfmt application logs. About 1.0%
/// mention "timeout" (the needle of the filter benchmark): 0.6% are logfmt `level=error` lines
/// and 0.4% JSON error lines with a 5xx `status`, which issue 5's example
/// `{...} |= "timeout" | json | status >= 500` finds. Both kinds also contain "error".
fn line(rng: &mut Rng, s: &Stream, ts: i64) -> (String, i32, &'static str) {
    let secs = (ts - T0) / 1_000_000_000;
    let (mm, ss, ms) = (secs / 60 % 60, secs % 60, (ts / 1_000_000) % 1000);
    let hh = secs / 3600;
    let id = rng.next();
    let path = PATHS[rng.below(PATHS.len())];
    let roll = rng.below(1000);
    match roll {
        0..=5 => {
            let up = UPSTREAMS[rng.below(UPSTREAMS.len())];
            (
                format!(
                    r#"level=error ts=2026-01-01T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z caller=client.go:231 msg="upstream request timeout" upstream={up} after=30s attempt={} request_id={id:016x} path={path}"#,
                    rng.below(3) + 1
                ),
                17,
                "ERROR",
            )
        }
        6..=40 => (
            format!(
                r#"level=warn ts=2026-01-01T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z caller=pool.go:88 msg="slow upstream response" upstream={} latency_ms={} request_id={id:016x}"#,
                UPSTREAMS[rng.below(UPSTREAMS.len())],
                800 + rng.below(2000)
            ),
            13,
            "WARN",
        ),
        41..=500 => (
            format!(
                r#"10.{}.{}.{} - - [01/Jan/2026:{hh:02}:{mm:02}:{ss:02} +0000] "{} {path}/{} HTTP/1.1" {} {} "-" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0" rt={}.{:03}"#,
                rng.below(256),
                rng.below(256),
                rng.below(256),
                if rng.below(4) == 0 { "POST" } else { "GET" },
                id % 100_000,
                [200, 200, 200, 201, 204, 304, 404, 500][rng.below(8)],
                200 + rng.below(40_000),
                rng.below(2),
                rng.below(1000)
            ),
            9,
            "INFO",
        ),
        501..=504 => (
            format!(
                r#"{{"level":"error","ts":"2026-01-01T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z","caller":"server/handler.go:97","msg":"upstream timeout","service":"{}","method":"POST","path":"{path}","status":{},"upstream":"{}","error":"context deadline exceeded","duration_ms":{}.{},"trace_id":"{id:032x}"}}"#,
                s.service,
                [504, 504, 504, 503][rng.below(4)],
                UPSTREAMS[rng.below(UPSTREAMS.len())],
                30_000 + rng.below(50),
                rng.below(10)
            ),
            17,
            "ERROR",
        ),
        _ => (
            format!(
                r#"{{"level":"info","ts":"2026-01-01T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z","caller":"server/handler.go:142","msg":"request completed","service":"{}","method":"GET","path":"{path}","status":200,"duration_ms":{}.{},"trace_id":"{id:032x}"}}"#,
                s.service,
                rng.below(300),
                rng.below(10)
            ),
            9,
            "INFO",
        ),
    }
}

/// Version of the generated lines, written into `workload.txt`. Bump it whenever `line()` or
/// `streams()` change, so a directory holding an older workload is refused rather than measured.
/// (v1 files hold only the three counts; v2 added the JSON 5xx timeout lines; v3 the needles.)
const WORKLOAD_VERSION: &str = "v3";
/// One line in this many is the needle of the rare-token benchmark (v3): a line whose
/// `request_id` starts with [`NEEDLE`], which no other line holds.
const NEEDLE_EVERY: u64 = 10_000_000;
const NEEDLE: &str = "5eed5eed";

/// The `n`-th planted needle line.
fn needle_line(n: u64, ts: i64) -> String {
    let secs = (ts - T0) / 1_000_000_000;
    format!(
        r#"level=warn ts=2026-01-01T{:02}:{:02}:{:02}Z caller=ledger.go:52 msg="refund issued twice" request_id={NEEDLE}{n:08x} amount_cents=1999"#,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// What was generated (kept in `workload.txt` so later runs can skip generation).
#[derive(Debug, Clone, Copy, Default)]
struct Workload {
    lines: u64,
    body_bytes: u64,
    /// Every text field's bytes plus 8 per integer field: the uncompressed record size.
    raw_bytes: u64,
}

impl Workload {
    /// `None` when `dir` holds no workload yet; an error when it holds another version's (writing
    /// the new one next to it would mix both).
    fn load(dir: &Path) -> Result<Option<Self>, Box<dyn std::error::Error>> {
        let path = dir.join("workload.txt");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let version = fields.get(3).copied().unwrap_or("v1");
        if version != WORKLOAD_VERSION {
            return Err(format!(
                "{} holds a workload of generator {version}, this one writes {WORKLOAD_VERSION}: \
                 delete {} (or pass another --dir) to regenerate",
                path.display(),
                dir.display()
            )
            .into());
        }
        let num = |i: usize| -> Result<u64, Box<dyn std::error::Error>> {
            let f = fields
                .get(i)
                .ok_or_else(|| format!("{} is truncated", path.display()))?;
            Ok(f.parse()?)
        };
        Ok(Some(Self {
            lines: num(0)?,
            body_bytes: num(1)?,
            raw_bytes: num(2)?,
        }))
    }

    fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::write(
            dir.join("workload.txt"),
            format!(
                "{} {} {} {WORKLOAD_VERSION}\n",
                self.lines, self.body_bytes, self.raw_bytes
            ),
        )
    }
}

async fn generate(storage: &Storage, target_body_bytes: u64) -> Result<Workload, Box<dyn std::error::Error>> {
    let streams = streams();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Average line ≈ 205 B: pick the line count up front so timestamps spread over the span.
    let lines = target_body_bytes / 205 + 1;
    let step = SPAN_NS / lines as i64;
    let mut w = Workload::default();
    let mut batch: Vec<LogRecord> = Vec::with_capacity(FLUSH_RECORDS);
    let started = Instant::now();
    let mut i = 0u64;
    while w.body_bytes < target_body_bytes {
        let s = &streams[rng.below(streams.len())];
        let ts = T0 + (i as i64).min(lines as i64) * step + rng.below(step.max(1) as usize) as i64;
        let (mut body, severity_number, severity_text) = line(&mut rng, s, ts);
        if i % NEEDLE_EVERY == NEEDLE_EVERY / 2 - 1 {
            body = needle_line(i / NEEDLE_EVERY, ts);
        }
        w.lines += 1;
        w.body_bytes += body.len() as u64;
        w.raw_bytes += (body.len() + s.resource.len() + 2 + severity_text.len()) as u64 + 8 * 4;
        batch.push(LogRecord {
            labels: s.labels.clone(),
            timestamp: ts,
            observed_timestamp: ts + 1_500_000,
            severity_number,
            severity_text: severity_text.into(),
            body,
            attributes: "{}".into(),
            resource_attributes: s.resource.clone(),
            ..LogRecord::default()
        });
        i += 1;
        if batch.len() == FLUSH_RECORDS {
            storage.write_logs(&batch).await?;
            batch.clear();
            eprint!(
                "\rgenerated {:.2} / {:.2} GB of lines ({:.0}s)",
                w.body_bytes as f64 / 1e9,
                target_body_bytes as f64 / 1e9,
                started.elapsed().as_secs_f64()
            );
        }
    }
    if !batch.is_empty() {
        storage.write_logs(&batch).await?;
    }
    eprintln!();
    Ok(w)
}

/// User + system CPU time of the whole process (every thread, exited ones included).
fn cpu_time() -> Duration {
    // Fields 14 and 15 of /proc/self/stat, in clock ticks (USER_HZ, 100 on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<u64> = after_comm.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // After the command name: field 3 is index 0, so utime (14) is index 11 and stime index 12.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

struct Measured {
    wall: Duration,
    cpu: Duration,
    records: usize,
    files_opened: u64,
    row_groups: u64,
}

async fn measure(
    storage: &Arc<Storage>,
    req: &LogRequest,
    runs: usize,
    line_index: bool,
) -> Result<Measured, Box<dyn std::error::Error>> {
    let mut best: Option<Measured> = None;
    for _ in 0..runs {
        // A fresh source per run: no footer cache carried over from the previous run.
        let mut source = storage.log_scan();
        if !line_index {
            source = Arc::new(
                Arc::into_inner(source)
                    .ok_or("a fresh source is not shared")?
                    .without_line_index(),
            );
        }
        let (w0, c0) = (Instant::now(), cpu_time());
        let got = source.select_logs(req).await?;
        let m = Measured {
            wall: w0.elapsed(),
            cpu: cpu_time().saturating_sub(c0),
            records: got.len(),
            files_opened: source.counters().files_opened,
            row_groups: source.counters().row_groups,
        };
        drop(got);
        if best.as_ref().is_none_or(|b| m.wall < b.wall) {
            best = Some(m);
        }
    }
    best.ok_or_else(|| "no runs".into())
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    for e in entries.flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => total += dir_bytes(&e.path()),
            Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => {}
        }
    }
    total
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut gb = 5.0f64;
    let mut dir = PathBuf::from("/tmp/logscan");
    let mut generate_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--gb" => gb = args.next().ok_or("--gb needs a value")?.parse()?,
            "--dir" => dir = PathBuf::from(args.next().ok_or("--dir needs a value")?),
            // Used by benches/compare/logql.sh: write the workload if missing, measure nothing.
            "--generate-only" => generate_only = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: log_scan [--gb N] [--dir PATH] [--generate-only]"
                )
                .into());
            }
        }
    }
    std::fs::create_dir_all(&dir)?;
    let defaults = StorageConfig::default();
    let workload = match Workload::load(&dir)? {
        Some(w) => {
            eprintln!("reusing the workload in {}", dir.display());
            w
        }
        None => {
            if dir_bytes(&dir.join("logs")) > 0 {
                return Err(format!(
                    "{} has logs but no workload.txt (an interrupted generation?): delete it to regenerate",
                    dir.display()
                )
                .into());
            }
            let storage = Storage::open(&defaults, &dir).await?;
            let started = Instant::now();
            let w = generate(&storage, (gb * 1e9) as u64).await?;
            eprintln!("generated and wrote in {:.0}s", started.elapsed().as_secs_f64());
            w.save(&dir)?;
            w
        }
    };
    if generate_only {
        return Ok(());
    }
    let probe = Storage::open(&defaults, &dir).await?;
    let stats = probe.logs_stats();
    let on_disk = dir_bytes(&dir.join("logs"));
    drop(probe);

    let re = |name: &str, v: &str| Matcher::new(MatchOp::RegexMatch, name, v);
    let everything = LogRequest {
        matchers: vec![re("cluster", ".+")?],
        start: T0,
        end: T0 + SPAN_NS + HOUR_NS,
        line_hints: vec![LineHint::Contains("timeout".into())],
        direction: Direction::Forward,
        limit: None,
    };
    let latest = LogRequest {
        matchers: vec![
            Matcher::equal("cluster", "prod-eu-1"),
            Matcher::equal("service_name", "checkout"),
        ],
        line_hints: vec![],
        direction: Direction::Backward,
        limit: Some(100),
        ..everything.clone()
    };
    let issue_example = LogRequest {
        matchers: vec![re("cluster", "prod-.*")?, Matcher::equal("service_name", "checkout")],
        line_hints: vec![LineHint::Contains("timeout".into())],
        ..latest.clone()
    };
    let count = LogRequest {
        matchers: vec![
            Matcher::equal("cluster", "prod-eu-1"),
            Matcher::equal("service_name", "checkout"),
        ],
        line_hints: vec![],
        direction: Direction::Forward,
        limit: None,
        ..everything.clone()
    };
    // What a LogQL metric query asks for (query/src/logql/eval.rs): the same scan, with a limit of
    // `max_records + 1` (LogqlConfig's default 50,000,000) to detect an oversized query.
    let as_metric = LogRequest {
        limit: Some(50_000_001),
        ..everything.clone()
    };
    // The rare-token search: one line in ten million holds the needle (see `needle_line`).
    let needle = LogRequest {
        line_hints: vec![LineHint::Contains(NEEDLE.into())],
        direction: Direction::Backward,
        limit: Some(100),
        ..everything.clone()
    };
    let needle_id = LogRequest {
        line_hints: vec![LineHint::Contains(format!("request_id={NEEDLE}00000001"))],
        ..needle.clone()
    };
    let queries: [(&str, &LogRequest, usize, bool); 8] = [
        (
            r#"(a) `{cluster=~".+"} |= "timeout"`, everything, no limit"#,
            &everything,
            2,
            true,
        ),
        (
            r#"(a') `{cluster=~".+"} |= "timeout"`, everything, limit 50,000,001 (a metric query's read)"#,
            &as_metric,
            2,
            true,
        ),
        (
            r#"(b) `{cluster="prod-eu-1", service_name="checkout"}`, limit 100 backward"#,
            &latest,
            5,
            true,
        ),
        (
            r#"(b') `{cluster=~"prod-.*", service_name="checkout"} |= "timeout"`, limit 100 backward"#,
            &issue_example,
            5,
            true,
        ),
        (
            r#"(c) `{cluster="prod-eu-1", service_name="checkout"}`, every record (count)"#,
            &count,
            2,
            true,
        ),
        (
            r#"(d) `{cluster=~".+"} |= "5eed5eed"` (8 bytes, one line in 10 M), limit 100 backward"#,
            &needle,
            5,
            true,
        ),
        (
            r#"(d') `{cluster=~".+"} |= "request_id=5eed5eed00000001"` (one line), limit 100 backward"#,
            &needle_id,
            5,
            true,
        ),
        (
            r#"(d'') (d) with the line index ignored (the full scan it replaces)"#,
            &needle,
            2,
            false,
        ),
    ];

    let load_before = loadavg();
    let mut rows = Vec::new();
    for concurrency in [1usize, defaults.read_concurrency] {
        let cfg = StorageConfig {
            read_concurrency: concurrency,
            ..defaults.clone()
        };
        let storage = Storage::open(&cfg, &dir).await?;
        for (name, req, runs, line_index) in &queries {
            let m = measure(&storage, req, *runs, *line_index).await?;
            eprintln!("{name} concurrency {concurrency}: {:?} wall, {:?} cpu", m.wall, m.cpu);
            rows.push((*name, concurrency, m));
        }
    }
    let load_after = loadavg();
    let cost = write_cost().await?;

    // The report is the program's output (stdout); progress goes to stderr.
    let mut out = std::io::stdout().lock();
    let gbs = |bytes: u64, d: Duration| bytes as f64 / 1e9 / d.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "workload: {} lines, {:.2} GB of bodies ({:.2} GB of records uncompressed), {} files, {:.2} GB Parquet on disk \
         (bodies / Parquet = {:.1}x, records / Parquet = {:.1}x)",
        workload.lines,
        workload.body_bytes as f64 / 1e9,
        workload.raw_bytes as f64 / 1e9,
        stats.files,
        on_disk as f64 / 1e9,
        workload.body_bytes as f64 / on_disk as f64,
        workload.raw_bytes as f64 / on_disk as f64,
    )?;
    writeln!(
        out,
        "load average (1/5/15 min) before: {load_before}; after: {load_after}"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| query | read_concurrency | wall | CPU | records | files opened | row groups read | body GB/s per core (CPU) | body GB/s (wall) |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for (name, concurrency, m) in rows {
        let full_scan = m.files_opened == stats.files && (name.starts_with("(a") || name.starts_with("(d'')"));
        let (per_core, wall) = if full_scan {
            (
                format!("{:.2}", gbs(workload.body_bytes, m.cpu)),
                format!("{:.2}", gbs(workload.body_bytes, m.wall)),
            )
        } else {
            ("".into(), "".into())
        };
        // `|` in a query would end the table cell.
        let name = name.replace('|', "\\|");
        writeln!(
            out,
            "| {name} | {concurrency} | {:.3} s | {:.2} s | {} | {} | {} | {per_core} | {wall} |",
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64(),
            m.records,
            m.files_opened,
            m.row_groups,
        )?;
    }
    writeln!(out)?;
    writeln!(out, "{cost}")?;
    Ok(())
}

/// The line index's write cost: the first 1,000,000 records of the workload written with
/// `log_line_index` on and off (twice each, alternating; the fastest of each kept), CPU and
/// stored bytes.
async fn write_cost() -> Result<String, Box<dyn std::error::Error>> {
    const RECORDS: u64 = 1_000_000;
    let mut best = [(Duration::MAX, 0u64); 2];
    for _ in 0..2 {
        for (i, index) in [true, false].into_iter().enumerate() {
            let dir = tempfile_dir(index)?;
            let cfg = StorageConfig {
                log_line_index: index,
                ..StorageConfig::default()
            };
            let storage = Storage::open(&cfg, &dir).await?;
            let c0 = cpu_time();
            // ~205 B a line: the byte target that makes `RECORDS` lines.
            let w = generate(&storage, RECORDS * 205).await?;
            let cpu = cpu_time().saturating_sub(c0);
            let bytes = dir_bytes(&dir.join("logs"));
            std::fs::remove_dir_all(&dir)?;
            if cpu < best[i].0 {
                best[i] = (cpu, bytes);
            }
            eprintln!(
                "write cost, index {index}: {} lines, {cpu:?} cpu, {bytes} bytes",
                w.lines
            );
        }
    }
    let [(on_cpu, on_bytes), (off_cpu, off_bytes)] = best;
    let per_m = |d: Duration| d.as_secs_f64() * 1e6 / RECORDS as f64;
    Ok(format!(
        "write cost of the line index over the workload's first {RECORDS} records (generating, encoding and \
         storing them, fastest of 2): {:.2} CPU-s per 1M records with it, {:.2} without (+{:.2}); stored \
         {:.1} B/record with it, {:.1} without (+{:.1} B, +{:.0}%)",
        per_m(on_cpu),
        per_m(off_cpu),
        per_m(on_cpu.saturating_sub(off_cpu)),
        on_bytes as f64 / RECORDS as f64,
        off_bytes as f64 / RECORDS as f64,
        (on_bytes as f64 - off_bytes as f64) / RECORDS as f64,
        (on_bytes as f64 / off_bytes as f64 - 1.0) * 100.0,
    ))
}

fn tempfile_dir(index: bool) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("log_scan_write_cost_{}_{index}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
