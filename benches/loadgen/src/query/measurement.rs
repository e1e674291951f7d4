//! Times the suite against one receiver: warm-up runs, then timed runs, every response
//! checked (`status: success`, non-empty, the same as the first answer up to the last bits
//! of a float).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::answer::{self, Answer};
use super::suite::{Query, Window};
use crate::{Error, process};

/// Run-to-run tolerance of one receiver: floating-point summation order, nothing more.
const RUN_TO_RUN: answer::Rules = answer::Rules {
    tolerance: answer::Tolerance {
        relative: 1e-12,
        absolute: 0.0,
    },
    compare_from_ms: None,
};

/// How to run the suite against one receiver.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// e.g. `http://127.0.0.1:9090`.
    pub base_url: String,
    pub warmup: usize,
    pub runs: usize,
    /// Receiver PID: report its CPU time per query from `/proc`.
    pub server_pid: Option<u32>,
    pub timeout: Duration,
}

/// Summary of the timed runs, in milliseconds. `median` is the mean of the two middle runs
/// for an even count; `p90` is the nearest-rank 90th percentile (the 9th of 10).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stats {
    pub min: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
    pub mean: f64,
}

impl Stats {
    pub(crate) fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
        Some(Self {
            min: s[0],
            median,
            p90: s[rank - 1],
            max: s[n - 1],
            mean: s.iter().sum::<f64>() / n as f64,
        })
    }
}

/// The outcome of one query against one receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct QueryRun {
    pub query: Query,
    /// The first failure, if any run failed; then `stats` covers only the runs before it.
    pub error: Option<String>,
    pub warmup_ms: Vec<f64>,
    pub timings_ms: Vec<f64>,
    pub stats: Option<Stats>,
    /// Receiver CPU (utime+stime) over the timed runs divided by their number. Ticks are
    /// 10 ms, so only the mean over all runs is meaningful.
    pub server_cpu_ms_per_query: Option<f64>,
    pub response_bytes: usize,
    /// Runs whose answer differed from the first only in the last bits of some value
    /// (a receiver that sums in parallel adds in a varying order).
    pub float_noise_runs: usize,
    /// Series, label values or label sets in the answer.
    pub items: usize,
    /// Points over all series (range and instant queries).
    pub points: usize,
    pub answer: Option<Answer>,
}

impl QueryRun {
    pub(crate) fn ok(&self) -> bool {
        self.error.is_none() && self.answer.is_some()
    }
}

/// Runs every query of `suite` in order, each `warmup + runs` times back to back.
pub(crate) async fn run_suite(settings: &Settings, window: &Window, suite: &[Query]) -> Result<Vec<QueryRun>, Error> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("tributary-loadgen/", env!("CARGO_PKG_VERSION")))
        .timeout(settings.timeout)
        .tcp_nodelay(true)
        .build()
        .map_err(Error::Client)?;
    let mut out = Vec::with_capacity(suite.len());
    for query in suite {
        out.push(run_query(&client, settings, window, query).await);
    }
    Ok(out)
}

async fn run_query(client: &reqwest::Client, settings: &Settings, window: &Window, query: &Query) -> QueryRun {
    let mut run = QueryRun {
        query: query.clone(),
        error: None,
        warmup_ms: vec![],
        timings_ms: vec![],
        stats: None,
        server_cpu_ms_per_query: None,
        response_bytes: 0,
        float_noise_runs: 0,
        items: 0,
        points: 0,
        answer: None,
    };
    let ticks = process::clock_ticks_per_second();
    let cpu = |pid: Option<u32>| pid.and_then(|p| process::usage(p, ticks).ok()).map(|u| u.cpu_seconds);
    let mut cpu_before = None;
    for i in 0..settings.warmup + settings.runs {
        let timed = i >= settings.warmup;
        if i == settings.warmup {
            cpu_before = cpu(settings.server_pid);
        }
        match once(client, settings, window, query).await {
            Ok((ms, bytes, answer)) => {
                if let Some(first) = &run.answer
                    && *first != answer
                {
                    let d = answer::compare(first, &answer, &RUN_TO_RUN, ("run 1", &format!("run {}", i + 1)), 1);
                    if d.count > 0 {
                        run.error = Some(format!(
                            "run {} answered differently from run 1 ({} differences; first: {})",
                            i + 1,
                            d.count,
                            d.examples.join("")
                        ));
                        break;
                    }
                    run.float_noise_runs += 1;
                }
                if timed {
                    run.timings_ms.push(ms);
                } else {
                    run.warmup_ms.push(ms);
                }
                run.response_bytes = bytes;
                run.items = answer.len();
                run.points = answer.points();
                run.answer.get_or_insert(answer);
            }
            Err(e) => {
                run.error = Some(format!("run {}: {e}", i + 1));
                break;
            }
        }
    }
    if run.error.is_none()
        && let (Some(before), Some(after)) = (cpu_before, cpu(settings.server_pid))
        && !run.timings_ms.is_empty()
    {
        run.server_cpu_ms_per_query = Some((after - before) * 1000.0 / run.timings_ms.len() as f64);
    }
    run.stats = Stats::of(&run.timings_ms);
    run
}

/// One request: wall time until the whole body arrived, its size, and the parsed answer.
async fn once(
    client: &reqwest::Client,
    settings: &Settings,
    window: &Window,
    query: &Query,
) -> Result<(f64, usize, Answer), String> {
    let (path, params) = query.request.http(window);
    let url = format!("{}{path}", settings.base_url.trim_end_matches('/'));
    let started = Instant::now();
    let response = client
        .get(&url)
        .query(&params)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {url}: reading the body: {e}"))?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    let answer = answer::parse(&query.request, &body)?;
    Ok((ms, body.len(), answer))
}
