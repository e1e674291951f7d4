//! Reading the head: what a query's `select` costs now that samples are held as XOR chunks
//! (`ingest/src/head/chunks.rs`, decoded by `storage::xor_chunk`). 3 clusters × 10,000
//! reference-workload series × 120 samples at 15 s; every series selected:
//! - `last_5m`: an instant query's lookback at the end of the data (the open chunks' tails);
//! - `whole`: every sample (a range query over the head's span).
//!
//! `cargo bench --bench head_select`

mod common;

use criterion::{Criterion, Throughput};
use tributary_loadgen::workload;
use tributary_storage::read::{SelectRequest, Source};
use tributary_storage::types::{MatchOp, Matcher, TimeRange};

fn bench(c: &mut Criterion) {
    let cfg = workload::Config {
        clusters: 3,
        series_per_cluster: 10_000,
        samples_per_series: 120,
        ..Default::default()
    };
    let head = common::loaded_head(&cfg);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let all = SelectRequest::new(
        vec![Matcher::new(MatchOp::RegexMatch, "cluster", ".+").expect("regex")],
        TimeRange::new(i64::MIN, i64::MAX),
    );
    let series = rt.block_on(head.select(&all)).expect("select");
    let end = series
        .iter()
        .filter_map(|s| s.samples.last())
        .map(|s| s.timestamp)
        .max()
        .expect("data");
    let mut g = c.benchmark_group("head_select");
    g.sample_size(10);
    for (name, range) in [
        ("last_5m", TimeRange::new(end - 300_000, end)),
        ("whole", TimeRange::new(i64::MIN, i64::MAX)),
    ] {
        let req = SelectRequest::new(
            vec![Matcher::new(MatchOp::RegexMatch, "cluster", ".+").expect("regex")],
            range,
        );
        let samples: usize = rt
            .block_on(head.select(&req))
            .expect("select")
            .iter()
            .map(|s| s.samples.len())
            .sum();
        g.throughput(Throughput::Elements(samples as u64));
        g.bench_function(name, |b| b.iter(|| rt.block_on(head.select(&req)).expect("select")));
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
