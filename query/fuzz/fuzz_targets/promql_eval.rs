//! PromQL text parsed and evaluated by `Engine::range_query` over a tiny fixed in-memory dataset
//! (storage's reference `MemSource`), under a 1 s `query.timeout` and `query.max_samples` of
//! 50,000: every function, aggregation, operator and subquery the fuzzer reaches runs for real.
//!
//! Beyond "never panics" (and never hangs: run with libFuzzer's `-timeout`):
//! - the answer is a value or an error, never both half-way: evaluating again gives the same
//!   answer, value for value (series order and `NaN`s included, compared by `Debug`), unless
//!   either run was cut by the deadline;
//! - the range, instant-like (`start = end`) and zero-length cases all go through the same path.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tributary_query::{Engine, Error, QueryConfig};
use tributary_storage::test_util::MemSource;
use tributary_storage::types::{Labels, Sample, Series};

/// The dataset's samples: every 15 s over ten minutes.
const END_MS: i64 = 600_000;

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let query = String::from_utf8_lossy(rest);
    // The first byte picks the evaluation window: a range with a 60 s step, or one instant.
    let (start, end, step) = match shape % 3 {
        0 => (0, END_MS, 60_000),
        1 => (END_MS / 2, END_MS / 2, 1_000),
        _ => (-300_000, END_MS + 300_000, 45_000),
    };
    let (rt, engine) = fixture();
    let first = rt.block_on(engine.range_query(&query, start, end, step, None));
    if cut_short(&first) {
        return;
    }
    let second = rt.block_on(engine.range_query(&query, start, end, step, None));
    if cut_short(&second) {
        return;
    }
    match (&first, &second) {
        (Ok(a), Ok(b)) => assert_eq!(format!("{:?}", a.value), format!("{:?}", b.value), "{query:?}"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{query:?}"),
        _ => panic!("{query:?} answered {first:?}, then {second:?}"),
    }
});

fn cut_short<T>(answer: &Result<T, Error>) -> bool {
    matches!(answer, Err(Error::Timeout(_) | Error::Canceled(_)))
}

fn fixture() -> &'static (tokio::runtime::Runtime, Engine) {
    static FIXTURE: OnceLock<(tokio::runtime::Runtime, Engine)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let cfg = QueryConfig {
            timeout: Duration::from_secs(1),
            max_samples: 50_000,
            ..QueryConfig::default()
        };
        (rt, Engine::new(Arc::new(MemSource::new(dataset())), cfg))
    })
}

/// Counters, gauges with `NaN`, a gap and a stale marker, and classic histogram buckets.
fn dataset() -> Vec<Series> {
    let every = |f: &dyn Fn(i64) -> f64| -> Vec<Sample> {
        (0..=END_MS / 15_000).map(|i| Sample::new(i * 15_000, f(i))).collect()
    };
    let mut series = Vec::new();
    for (code, rate) in [("200", 10.0), ("500", 0.5)] {
        for instance in ["a", "b"] {
            series.push(Series::new(
                Labels::from_pairs(&[
                    ("__name__", "http_requests_total"),
                    ("code", code),
                    ("instance", instance),
                    ("job", "api"),
                    ("cluster", "c1"),
                ]),
                // A counter with a reset halfway.
                every(&|i| {
                    if i < 20 {
                        i as f64 * rate
                    } else {
                        (i - 20) as f64 * rate
                    }
                }),
            ));
        }
    }
    for (instance, up) in [("a", 1.0), ("b", 0.0)] {
        series.push(Series::new(
            Labels::from_pairs(&[("__name__", "up"), ("instance", instance), ("job", "api")]),
            every(&|_| up),
        ));
    }
    let mut gauge = every(&|i| ((i as f64) * 0.7).sin() * 100.0);
    gauge[7].value = f64::NAN;
    gauge.remove(12);
    gauge[30].value = f64::from_bits(tributary_storage::types::STALE_NAN_BITS);
    series.push(Series::new(
        Labels::from_pairs(&[("__name__", "temperature"), ("room", "x"), ("le", "oops")]),
        gauge,
    ));
    for (le, share) in [("0.1", 0.3), ("0.5", 0.7), ("1", 0.9), ("+Inf", 1.0)] {
        series.push(Series::new(
            Labels::from_pairs(&[("__name__", "latency_seconds_bucket"), ("le", le), ("job", "api")]),
            every(&|i| (i as f64 * 20.0 * share).floor()),
        ));
    }
    series
}
