//! Reading the head: what a query's `select` costs now that samples are held as XOR chunks
//! (`ingest/src/head/chunks.rs`, decoded by `storage::xor_chunk`). 3 clusters × 10,000
//! reference-workload series × 120 samples at 15 s; every series selected:
//! - `last_5m`: an instant query's lookback at the end of the data (the open chunks' tails);
//! - `whole`: every sample (a range query over the head's span);
//! - `xor_decode`: the decoder alone, over the same samples encoded as the head encodes them
//!   (the hand-written `storage::xor_chunk` reader's own figure).
//!
//! `cargo bench --bench head_select`

mod common;

use criterion::{Criterion, Throughput};
use tributary_loadgen::workload;
use tributary_storage::read::{SelectRequest, Source};
use tributary_storage::types::{MatchOp, Matcher, TimeRange};
use tributary_storage::xor_chunk::{MAX_SAMPLES_PER_CHUNK, XorChunk, XorSamples};

/// The server's allocator (`src/main.rs`), so allocation costs are the ones it pays (glibc's
/// `malloc` made allocating each series' output most of `whole`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let chunks: Vec<Vec<u8>> = series
        .iter()
        .flat_map(|s| s.samples.chunks(MAX_SAMPLES_PER_CHUNK))
        .map(|samples| {
            let mut chunk = XorChunk::new();
            samples.iter().for_each(|x| chunk.push(x.timestamp, x.value));
            chunk.into_bytes()
        })
        .collect();
    let samples: usize = series.iter().map(|s| s.samples.len()).sum();
    g.throughput(Throughput::Elements(samples as u64));
    g.bench_function("xor_decode", |b| {
        let mut out = Vec::with_capacity(MAX_SAMPLES_PER_CHUNK);
        b.iter(|| {
            for chunk in &chunks {
                out.clear();
                XorSamples::new(chunk).read_into(&mut out);
            }
            out.len()
        })
    });
    g.finish();
}

// `criterion_group!` would declare an undocumented `pub fn` (missing_docs); this is its and
// `criterion_main!`'s expansion.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
